"""The keeper: keep every grant alive, warn before anything lapses, serve tokens, expose metrics.

config.py (TOML), schedule.py (pure decisions: when to refresh, wake, retry and alert),
alerts.py (delivery), managers.py (cached TokenManagers and shared HTTP clients), metrics.py
(Prometheus), protocol.py (the token socket's request line), service.py (HTTP and the token
socket), run.py (the loop), daemon.py (the process). `wxtoken keep` (cli/keeper.py) calls
daemon.serve.
"""
