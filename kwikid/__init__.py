"""Everything about KwikID's API and nothing about the portal's tables: the field catalogue, the request
builder and its reverse, the OpenAPI file and its schema check, the HTTP client and its typed errors, and
the reading of a 400's reasons. No Django, no app of the portal (an import-linter contract holds it)."""
