"""/api/v1 routers: thin: parse the request, call the domain, shape the answer."""
