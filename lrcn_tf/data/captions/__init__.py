"""Image captions (Tables 2-4): COCO 2014 / Flickr30k and their embedded synthetic stand-ins.

format.py (Karpathy and COCO JSON, prepared-folder info, tf.data) · prepare.py (images ->
shards) · synthetic.py (the embedded synthetic_coco2014 / synthetic_flickr30k).
"""
