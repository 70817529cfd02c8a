"""The local engine: a small "remote service" on this machine that runs the task kinds with
FFmpeg and reports through the same signed webhook path a cloud backend takes.

``engine/`` (FFmpeg, no Django), ``backend.py`` (the backend the registry loads), ``run.py``
(one job in a worker), ``fetch.py`` (URL inputs), ``delivery.py`` (signed reports) and
``jobs.py`` (its background job). The core never imports this package: it reaches the local
engine only through the backend registry (``TAPESTRY_MEDIA["BACKEND"]``).
"""
