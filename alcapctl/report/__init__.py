"""``alcapctl report``: a production's state as one self-contained HTML page, or as JSON.

``figures`` turns rows into numbers, ``model`` gathers them per production, ``charts``
draws them as inline SVG (matplotlib, imported only for HTML) and ``page`` writes the
HTML.  The rows come from ``alcapctl.store.report`` in one read transaction.
"""
