"""CML 2.9 REST API adapter: async client, anti-corruption models, endpoint resolution, credentials."""
