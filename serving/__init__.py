"""Model server for the models the pipeline pushes (KServe custom runtime; see model_server.py)."""
