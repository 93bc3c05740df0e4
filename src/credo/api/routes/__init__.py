"""One module per noun of the API; each route names the roles it admits (``credo.api.auth.Allow``)."""
