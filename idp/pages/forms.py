"""The hosted pages' forms (CSRF-protected by Flask-WTF)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

EMAIL = [
    DataRequired("Enter your email address."),
    Length(max=320, message="Email addresses have at most 320 characters."),
    Email("Enter a valid email address."),
]
NAME = [Optional(), Length(max=255, message="Use at most 255 characters.")]
PASSWORD = [DataRequired("Enter a password."), Length(max=1024, message="Use at most 1024 characters.")]


class LoginForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", validators=EMAIL)
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=1024)])


class SignupForm(FlaskForm):
    """A new account."""

    email = EmailField("Email", validators=EMAIL)
    password = PasswordField("Password", validators=PASSWORD)
    name = StringField("Name", validators=NAME)


class ResetRequestForm(FlaskForm):
    """The email to send a reset link to."""

    email = EmailField("Email", validators=EMAIL)


class NewPasswordForm(FlaskForm):
    """A new password, typed twice."""

    password = PasswordField("New password", validators=PASSWORD)
    confirm = PasswordField("Repeat the new password",
                            validators=[EqualTo("password", "The two passwords differ.")])


class ChangePasswordForm(NewPasswordForm):
    """The current password and a new one."""

    current = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])


class ConsentForm(FlaskForm):
    """Allow or deny a third-party application."""

    allow = SubmitField("Allow")
    deny = SubmitField("Deny")


class ActionForm(FlaskForm):
    """A button that changes something: carries only the CSRF token."""
