"""The idempotent steps of a production; each is safe to repeat, to race and to interrupt."""
