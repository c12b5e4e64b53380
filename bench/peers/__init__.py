"""Adapters driving peer session libraries through their normal session path.

Each adapter calls the library's own load and save entry points (what its
middleware or session interface runs per request) with the library's
default serializer, minus the HTTP framework's routing: the work measured
is the session work, the same for every contender.
"""
