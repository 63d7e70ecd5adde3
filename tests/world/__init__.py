"""The offline test world: real packages, channels, servers, locks and a stand-in pixi.

Shared by the tests, the demo (``python -m tests.world.demo``) and the benchmarks.
"""
