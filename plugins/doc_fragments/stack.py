# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The options that name a stack, shared by the cattle.aws modules."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  app:
    description:
      - Name of the application - the stack is O(app) in O(environment).
      - 1 to 32 lowercase letters, digits and single hyphens, starting with a letter and not
        ending with a hyphen.
      - Resources belong to the stack by their ownership tags (C(cattle:app),
        C(cattle:environment), C(cattle:managed-by=cattle.aws)), never by their names.
    type: str
    required: true
  environment:
    description:
      - Environment of the application, for example V(prod).
      - Same characters as O(app), 1 to 24 of them. Omit it for a stack without environment.
    type: str
"""
