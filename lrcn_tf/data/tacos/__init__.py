"""TACoS multi-level (Table 5): the JSON-lines format, preparation and the embedded synthetic_tacos.

format.py (reading, preparing, loading the prepared corpus) · synthetic.py (the generator).
"""
