"""The projections' ports implemented for each database (`projections.storage.ViewStorage`):
SQL shared by both in `store` and `log`, what differs in `postgres` and `sqlite`."""
