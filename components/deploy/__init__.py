"""Deploy: progressive delivery (canary, shadow) of pushed models to local processes, KServe or Vertex AI."""
