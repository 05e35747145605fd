"""The embedded default: real boto3 calls against a moto server on 127.0.0.1, no cloud at all.

Persistence (the choice, and why): the server runs as a detached background process that
lives until ``modelrail embedded stop``; its pid, port and start time are in
``<state_dir>/embedded.json``. Every registry write is also kept in a local record
(``<state_dir>/embedded/``: the uploaded objects and the request that recreates each model
package in its current state). When a command finds the server gone (killed, rebooted), it
starts a new one and replays that record, so no state is ever lost with the process. A live
server keeps commands fast; the record makes a dead one harmless.
"""
