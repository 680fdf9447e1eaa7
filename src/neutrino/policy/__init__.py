"""Who may do what: oslo.policy-compatible rules with Neutron's secure-RBAC defaults.

- :mod:`neutrino.policy.rules`: the rule language (parse, bind to a caller, check).
- :mod:`neutrino.policy.defaults`: the default rule set, as data.
- :mod:`neutrino.policy.engine`: :class:`PolicyEngine`, the API layer's entry point.
"""

from neutrino.policy.engine import AttributeFilter, CallerPolicy, PolicyEngine, load_override_file
from neutrino.policy.rules import Credentials, PolicyRuleError

__all__ = ["AttributeFilter", "CallerPolicy", "Credentials", "PolicyEngine", "PolicyRuleError",
           "load_override_file"]
