"""Render workers: `python -m app.worker` works the durable render queue (app/video/queue.py)."""
