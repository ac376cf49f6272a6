"""runvoy-template: a complete minimal runvoy provider. Tasks run as processes on this machine under a small
supervisor (``task.py``) that keeps the task's state and output in files, so any process can watch them."""
