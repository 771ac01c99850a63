"""How the ledger is stored and reached: settings, the recorders (one per database) and their
reads (`ledger_queries`), the views' storage, one translation of the storage's errors into the
ledger's (`storage_errors`), the command line (`cli`) and the HTTP service (`http`)."""
