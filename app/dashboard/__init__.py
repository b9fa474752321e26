"""The operator's dashboard: server-rendered pages over the job service, readable without JS."""
