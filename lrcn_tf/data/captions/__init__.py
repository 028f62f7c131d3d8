"""Image captions (Tables 2-4): COCO 2014 / Flickr30k and their embedded synthetic stand-ins.

format.py (Karpathy and COCO JSON, the prepared folder) · prepare.py (images -> shards) ·
pipeline.py (tf.data) · synthetic.py (the embedded synthetic_coco2014 / synthetic_flickr30k).
"""
