# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""Errors of the cattle.aws fleet core.

`FleetError` is the domain error: the user asked for something that cannot be done (an invalid
name, a resource owned by somebody else, an immutable fleet asked to change, ...). Its message
says what went wrong and which option fixes it; modules turn it into ``fail_json(msg=...)``.

AWS API failures are not FleetErrors: they are raised as amazon.aws ``AnsibleAWSError`` (through
`FleetAWSErrorHandler`) so that modules report them with ``fail_json_aws_error``.
"""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.errors import AWSErrorHandler


class FleetError(Exception):
    """A domain error whose message tells the user what went wrong and which option fixes it."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        # Extra, JSON-serialisable facts a module may return alongside msg (e.g. differing fields).
        self.details = details

    def __str__(self):
        return self.msg


class FleetAWSErrorHandler(AWSErrorHandler):
    """Turns botocore errors into AnsibleAWSError("Failed to <description>")."""
