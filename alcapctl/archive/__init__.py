"""Archives that raw inputs are staged from: one module per URL scheme."""
