"""The keeper: keep every grant alive, warn before anything lapses, serve tokens, expose metrics.

config.py (TOML), schedule.py (pure decisions), alerts.py (delivery), service.py (HTTP and the
token socket), run.py (the loop). `wxtoken keep` wires them together in cli.py.
"""
