"""How the ledger is stored and reached: settings, recorders, the command line."""
