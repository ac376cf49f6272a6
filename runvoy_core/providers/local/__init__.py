"""The embedded local provider: commands run as processes on this machine under a detached supervisor;
records, logs and lock registers live in SQLite under RUNVOY_HOME."""
