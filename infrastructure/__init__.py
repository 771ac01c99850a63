"""How the ledger is stored and reached: settings, the recorders (one per database), the
views' storage, the command line and the HTTP service."""
