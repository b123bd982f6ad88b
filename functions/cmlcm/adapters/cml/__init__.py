"""CML 2.9 REST API adapter: async client, anti-corruption models, endpoint resolution, credentials.

Modules by concept: `client` (`CmlClient`, one controller's API), `session` (`CmlFleetSession`,
a fleet's pooling), `tokens` (the token cache), `tls` (the `CML_TLS_VERIFY` setting and shared
SSL contexts), `classify` (answers and faults to `CmlError`s), `errors` (the `CmlError`
hierarchy), `models` (CML's JSON parsed), `endpoints` (`resolve_cml_base_url`), `credentials`
(`SecretsManagerCredentials`), `probe` (what collection reads). Submodules are imported on use:
the API Lambda does not pay for the HTTP client unless it talks to CML.
"""
