"""One module per noun of the API; each route names the operation it performs (``credo.api.auth.Allow``),
whose rule in ``credo.permissions`` says who may call it."""
