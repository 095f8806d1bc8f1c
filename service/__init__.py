"""The daemon as a service: `vocalstream serve` runs one capture-and-inference pipeline and
serves its events over HTTP to any number of clients.

capture.py  the pipeline on a microphone (or standard input) that waits for a lost device
hub.py      fan-out to clients with bounded queues; a client that falls behind is dropped
metrics.py  Prometheus metrics: counters, device state, provider, a latency histogram
app.py      the routes: / (live page), /events (SSE), /ws, /healthz, /metrics
server.py   uvicorn on its own thread beside the pipeline, and the orderly shutdown
page.html   the live page: current class, the last minutes as bands, the probabilities
"""
