"""TACoS multi-level (Table 5): the JSON-lines format and the embedded synthetic_tacos.

format.py (reading the JSON lines, the three input encodings) · prepare.py (JSON lines ->
prepared folder) · pipeline.py (the prepared folder in memory, tf.data) · synthetic.py.
"""
