"""Helpers for testing tapestry_media and the host projects that use it.

``tapestry_media.testing.contract_server`` holds an in-process HTTP server that speaks the
Ittybit task API contract, with fault injection and webhook delivery. Import submodules
explicitly: this package stays import-light (no Django, no test frameworks).
"""
