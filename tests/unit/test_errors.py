"""The one error tree: every error is a YomoError, rejections are classified by the
zippers' exact messages, and the builtins callers may catch still match."""

from __future__ import annotations

import builtins
import inspect

import pytest

import yomo
from yomo import errors
from yomo.cli.function_file import FunctionFileError
from yomo.client.sfn import HandlerError
from yomo.zipper.auth import AuthFailed, TokenAuth


def test_every_error_class_is_in_the_tree_and_drawn_in_the_docstring():
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        value = getattr(errors, name)
        if inspect.isclass(value):
            assert issubclass(value, errors.YomoError), name
            assert name in doc, f"{name} is missing from the tree in yomo/errors.py"


def test_errors_defined_elsewhere_before_are_the_trees():
    assert HandlerError is errors.HandlerError is yomo.HandlerError
    assert AuthFailed is errors.AuthFailed
    assert FunctionFileError is errors.FunctionFileError


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("invalid token: wrong", errors.AuthenticationError),  # Go pkg/auth/token.go
        ("invalid token: ", errors.AuthenticationError),  # no credential at all
        ("authentication not found: basic", errors.AuthenticationError),  # Go core/auth
        (
            "yomo: too many failed authentication attempts from 1.2.3.4; retry in 1.0 s",
            errors.AuthenticationError,
        ),
        ("version negotiation failed: client=x, server=y", errors.RejectedError),
        # words alone do not decide (the old word search made these auth failures)
        ("function token-counter is already registered", errors.RejectedError),
        ("no credential store configured", errors.RejectedError),
    ],
)
def test_rejections_are_classified_by_the_zippers_exact_messages(message, kind):
    error = errors.RejectedError.from_message(message)
    assert type(error) is kind
    assert error.reason == message
    assert str(error) == f"yomo: rejected by zipper: {message}"


def test_auth_failed_keeps_the_text_sent_to_the_client_unprefixed():
    with pytest.raises(AuthFailed) as info:
        TokenAuth("s3cret").authenticate("nope")
    assert info.value.message == "invalid token: nope"
    assert info.value.logged == "invalid token (not logged)"


def test_builtins_callers_catch_still_match():
    assert issubclass(errors.TimeoutError, builtins.TimeoutError)
    assert issubclass(errors.StateError, RuntimeError)
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.FunctionFileError, errors.ConfigError)


def test_a_bad_zipper_address_is_a_config_error():
    from yomo.session.address import parse_address

    with pytest.raises(errors.ConfigError, match="yomo: zipper address 'h:x': invalid port"):
        parse_address("h:x")
    with pytest.raises(ValueError, match=r"1\.\.65535"):
        parse_address("h:70000")
