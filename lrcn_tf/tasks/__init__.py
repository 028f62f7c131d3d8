"""One module per task, each with the same entry point `run_row(cfg, data, workdir, **options)`.

activity.py (Table 1) · retrieval.py (Table 2) · captioning.py (Table 3, and the captioner
Tables 2 and 4 reuse) · video_description.py (Table 5). `base.py` holds what they share.
"""
