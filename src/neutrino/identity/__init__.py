"""Identity: the embedded Keystone v3 subset served under ``/identity``, and the token strategies.

Entry points: :func:`neutrino.identity.app.build_identity_app` (the HTTP API),
:func:`neutrino.identity.strategy.build_token_strategy` (request headers -> RequestContext),
:func:`neutrino.identity.store.bootstrap` (standard roles, projects and users) and
:func:`neutrino.identity.cli.register` (``neutrino identity ...``).
"""
