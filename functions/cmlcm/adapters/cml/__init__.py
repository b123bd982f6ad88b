"""CML 2.9 REST API adapter: async client, anti-corruption models, endpoint resolution, credentials.

Entry points: `CmlFleetSession` (one pool for a fleet) / `CmlClient` (one controller) in
`client`, `resolve_cml_base_url` in `endpoints`, `SecretsManagerCredentials` in `credentials`,
the `CmlError` hierarchy in `errors`. Submodules are imported on use: the API Lambda does not
pay for httpx unless it talks to CML.
"""
