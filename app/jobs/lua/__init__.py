"""The job store's Lua scripts: data read by ``app.jobs.scripts``, not Python code."""
