"""Hosted pages: login, sign-up, email verification, password reset, consent and the account page."""

from flask import Blueprint, Response, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.connections import stores
from idp.connections.legacy import LegacyUnavailable
from idp.db import db
from idp.events import log as events
from idp.oauth import pending
from idp.oauth.authorize import consented_items
from idp.oauth.models import AuthorizationRequest, Consent
from idp.pages import links, mails
from idp.pages.forms import (
    ActionForm,
    ChangePasswordForm,
    ConsentForm,
    LoginForm,
    NewPasswordForm,
    ResetRequestForm,
    SignupForm,
)
from idp.pages.models import AccountToken
from idp.users import accounts, throttle
from idp.users.accounts import UserExists, set_password, still_verified
from idp.users.models import User
from idp.users.passwords import policy_error, verify_password
from idp.users.sessions import current_session, end_session, end_user_sessions, start_session
from idp.web import error_page, per_ip

bp = Blueprint("pages", __name__)

WRONG_CREDENTIALS = "Wrong email or password."
BLOCKED = "This account is blocked. Contact the administrator of the application."
ACCOUNT_EXISTS = "An account with this email already exists. Sign in, or reset your password."
UNAVAILABLE = "We can't {} right now. Please try again in a few minutes."


def _store(waiting: AuthorizationRequest | None) -> stores.UserStore:
    """Return the user store the pages act on: the waiting request's client's, else the native one."""
    client = pending.client_of(waiting)
    return stores.by_id(client.connection_id if client else None)


def _log(type_: str, description: str, store: stores.UserStore, waiting: AuthorizationRequest | None, *,
         user: User | None = None, email: str | None = None, error: str | None = None,
         details: dict[str, object] | None = None) -> None:
    """Add a log event about this store and the waiting request's client; the caller commits."""
    client = pending.client_of(waiting)
    events.record(type_, description, connection=store.connection.name, connection_id=store.id,
                  client_id=client.id if client else None, client_name=client.name if client else None,
                  user_id=user.id if user else None, user_name=user.email if user else email,
                  details={**({"error": {"message": error}} if error else {}), **(details or {})})


def _log_failure(type_: str, description: str, store: stores.UserStore,
                 waiting: AuthorizationRequest | None, *, user: User | None = None,
                 email: str | None = None) -> None:
    """Record a failure and commit it on its own (nothing else of the request is being committed)."""
    db.session.rollback()
    _log(type_, description, store, waiting, user=user, email=email, error=description)
    db.session.commit()


def _continue(waiting: AuthorizationRequest | None) -> BaseResponse:
    if waiting is not None:
        return redirect(url_for("oauth.resume", state=waiting.id))
    return redirect(url_for("pages.account"))


def _page(template: str, status: int = 200, **context: object) -> Response:
    waiting = context.get("waiting")
    client = pending.client_of(waiting) if isinstance(waiting, AuthorizationRequest) else None
    return Response(render_template(template, client=client, **context), status=status)


def _form_status() -> int:
    """Return the status of a page showing a form: 400 when a submission was refused."""
    return 400 if request.method == "POST" else 200


def _account_page(user: User, status: int = 200, form: ChangePasswordForm | None = None,
                  **context: object) -> Response:
    return _page("account.html", status, user=user, password_form=form or ChangePasswordForm(prefix="pw"),
                 action=ActionForm(), **context)


def _signed_in_user() -> User | None:
    sso = current_session()
    return db.session.get(User, sso.user_id) if sso else None


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" + ("" if count == 1 else "s")


def _wait_message(wait: throttle.Wait) -> str:
    if wait.locked:
        minutes = _plural(-(-wait.seconds // 60), "more minute")
        return (f"Too many failed sign-ins: this account is locked for {minutes}. "
                "Reset your password to unlock it now.")
    return f"Too many failed sign-ins. Wait {_plural(wait.seconds, 'second')} and try again."


def _throttled(template: str, wait: throttle.Wait, **context: object) -> Response:
    response = _page(template, 429, error=_wait_message(wait), locked=wait.locked, **context)
    response.headers["Retry-After"] = str(wait.seconds)
    return response


@bp.route("/u/login", methods=["GET", "POST"])
@per_ip("RATELIMIT_LOGIN")
def login() -> BaseResponse:
    """Sign in with email and password."""
    waiting = pending.find(request.args.get("state"))
    if waiting is None and request.method == "GET" and _signed_in_user():
        return redirect(url_for("pages.account"))
    form = LoginForm()
    if request.method == "GET":
        hint = request.args.get("email") or (waiting.params.get("login_hint") if waiting else None)
        form.email.data = (hint or "")[:320]
    if not form.validate_on_submit():
        return _page("login.html", _form_status(), form=form, waiting=waiting)
    email, password = form.email.data or "", form.password.data or ""
    store = _store(waiting)
    if wait := throttle.begin(store.id, email):
        if wait.new and (owner := store.find(email)):
            mails.locked(owner)
        _log_failure(events.FAILED_LOGIN, _wait_message(wait), store, waiting, email=email)
        return _throttled("login.html", wait, form=form, waiting=waiting)
    try:
        verified = store.authenticate(email, password)
    except LegacyUnavailable:
        _log_failure(events.FAILED_LOGIN, "The connection's legacy store is unavailable.", store, waiting,
                     email=email)
        return _page("login.html", 503, form=form, waiting=waiting, error=UNAVAILABLE.format("sign you in"))
    if verified is None:
        owner = store.find(email)
        if throttle.failed(store.id, email) and owner is not None:
            mails.locked(owner)
        # For the admins' logs only (the user sees one answer): a user of ours, or one the legacy store
        # refused (its script cannot tell a wrong password from an unknown email), is `fp`; else `fu`.
        known = owner is not None or store.migrating
        _log_failure(events.WRONG_PASSWORD if known else events.UNKNOWN_USER, WRONG_CREDENTIALS, store,
                     waiting, user=owner, email=email)
        return _page("login.html", 400, form=form, waiting=waiting, error=WRONG_CREDENTIALS)
    if verified.user.blocked:  # said only to who knows the password
        _log_failure(events.FAILED_LOGIN, "user is blocked", store, waiting, user=verified.user)
        return _page("login.html", 403, form=form, waiting=waiting, error=BLOCKED)
    throttle.clear(store.id, email)  # before the sign-in's transaction: counters write on their own
    if not still_verified(verified):  # a reset changed the password since it was checked
        _log_failure(events.FAILED_LOGIN, "The password changed during the sign-in.", store, waiting,
                     user=verified.user)
        return _page("login.html", 400, form=form, waiting=waiting, error=WRONG_CREDENTIALS)
    _log(events.SUCCESS_LOGIN, "Successful login", store, waiting, user=verified.user)
    start_session(verified.user, request.remote_addr)  # commits the event with the session
    return _continue(waiting)


@bp.route("/u/signup", methods=["GET", "POST"])
@per_ip("RATELIMIT_SIGNUP")
def signup() -> BaseResponse:
    """Create an account with email and password, then continue where the user came from."""
    waiting = pending.find(request.args.get("state"))
    form = SignupForm()
    if request.method == "GET" and waiting:
        form.email.data = waiting.params.get("login_hint", "")[:320]
    if not form.validate_on_submit():
        return _page("signup.html", _form_status(), form=form, waiting=waiting)
    email, password = form.email.data or "", form.password.data or ""
    store = _store(waiting)
    if problem := policy_error(password, email):
        form.password.errors = [problem]
        _log_failure(events.FAILED_SIGNUP, f"PasswordStrengthError: {problem}", store, waiting, email=email)
        return _page("signup.html", 400, form=form, waiting=waiting)
    try:
        user = store.create(email, password, name=(form.name.data or "").strip() or None)
    except UserExists:
        _log_failure(events.FAILED_SIGNUP, "The user already exists.", store, waiting, email=email)
        return _page("signup.html", 400, form=form, waiting=waiting, error=ACCOUNT_EXISTS)
    except LegacyUnavailable:
        _log_failure(events.FAILED_SIGNUP, "The connection's legacy store is unavailable.", store, waiting,
                     email=email)
        return _page("signup.html", 503, form=form, waiting=waiting, error=UNAVAILABLE.format("sign you up"))
    # The user was committed by the store; the event goes with the verification mail, and the
    # automatic sign-in (an `s`, as Auth0 logs it) with the session.
    _log(events.SUCCESS_SIGNUP, "Successful signup", store, waiting, user=user)
    mails.verification(user)
    db.session.commit()
    _log(events.SUCCESS_LOGIN, "Successful login", store, waiting, user=user, details={"via": "signup"})
    start_session(user, request.remote_addr)
    return _continue(waiting)


# Emailed tokens travel in the query string, which access logs leave out; a path would be logged.
@bp.get("/u/verify-email")
def verify_email() -> Response:
    """Mark an email address verified through the emailed link."""
    token = request.args.get("token", "")
    try:
        user = links.user_of(links.redeem(token, links.VERIFY_EMAIL))
        if user is None:
            raise links.LinkError("This link belongs to an account that no longer exists.")
    except links.LinkError as e:
        db.session.rollback()
        return error_page("invalid_link", str(e))
    user.email_verified = True
    # Whoever signed in before the owner of the mailbox proved it was not necessarily them (an
    # address registered by someone else): those sessions end; this browser's own is the owner's.
    sso = current_session()
    end_user_sessions(user.id, keep=sso.id if sso and sso.user_id == user.id else None)
    db.session.commit()
    return _page("notice.html", title="Email verified",
                 message=f"Thank you: {user.email} is verified.", link=url_for("pages.account"),
                 link_text="Go to your account")


@bp.route("/u/reset-password", methods=["GET", "POST"])
@per_ip("RATELIMIT_RESET")
def reset_request() -> Response:
    """Ask for a password-reset link; the answer is the same whether or not the email exists."""
    waiting = pending.find(request.args.get("state"))
    form = ResetRequestForm()
    if request.method == "GET":
        form.email.data = (request.args.get("email") or (waiting.params.get("login_hint") if waiting else "")
                           or "")[:320]
    if not form.validate_on_submit():
        return _page("reset_request.html", _form_status(), form=form, waiting=waiting)
    email = form.email.data or ""
    store = _store(waiting)
    # Logged whether or not the email has an account: that is looked up later, in the mail sender.
    _log(events.CHANGE_PASSWORD_REQUEST, "Change password request", store, waiting, email=email)
    mails.password_reset(email, store.id, waiting.id if waiting else None)  # commits the event with it
    return _page("notice.html", title="Check your inbox", waiting=waiting,
                 back=url_for("pages.login", state=waiting.id if waiting else None, email=email),
                 message=f"If an account exists for {email}, we have sent it a link to choose a new "
                         "password. The link works once and expires soon.")


@bp.route("/u/reset-password/new", methods=["GET", "POST"])
@per_ip("RATELIMIT_RESET")
def reset_password() -> Response:
    """Choose a new password through the emailed link; every session and refresh token ends.

    A legacy user who has not moved over yet is created now, with the new password and the
    legacy store's current profile.
    """
    token = request.args.get("token", "")
    waiting = pending.find(request.args.get("state"))
    form = NewPasswordForm()
    try:
        row = links.peek(token, links.RESET_PASSWORD)
    except links.LinkUsed as used:
        return _reset_again(used, form, waiting)
    except links.LinkError as e:
        return error_page("invalid_link", str(e))
    if not form.validate_on_submit():
        return _page("reset_password.html", _form_status(), form=form)
    password = form.password.data or ""
    store = stores.by_id(row.connection_id)
    if problem := policy_error(password, row.email):
        form.password.errors = [problem]
        _log_failure(events.FAILED_CHANGE_PASSWORD, f"PasswordStrengthError: {problem}", store, waiting,
                     email=row.email)
        return _page("reset_password.html", 400, form=form)
    try:
        user = links.user_of(row) or store.reset_owner(row.email, password)
        if user is None:
            raise links.LinkError("This link belongs to an account that no longer exists.")
        links.redeem(token, links.RESET_PASSWORD)  # committed below, with the new password
    except links.LinkUsed as used:  # a concurrent submission won
        return _reset_again(used, form, waiting)
    except links.LinkError as e:
        return error_page("invalid_link", str(e))
    except LegacyUnavailable:
        _log_failure(events.FAILED_CHANGE_PASSWORD, "The connection's legacy store is unavailable.", store,
                     waiting, email=row.email)
        return error_page("temporarily_unavailable", UNAVAILABLE.format("reset your password"), 503)
    user.email_verified = True  # the reset proved control of the address
    _log(events.SUCCESS_CHANGE_PASSWORD, "Password changed", store, waiting, user=user,
         details={"via": "password_reset"})
    set_password(user, password)  # commits the event with the password
    return _password_changed(user, waiting)


def _reset_again(used: links.LinkUsed, form: NewPasswordForm,
                 waiting: AuthorizationRequest | None) -> Response:
    """Answer a used reset link: the password it just set, sent again (a double click), succeeds again.

    Anything else is refused: a used link never sets a password, nor confirms one long after.
    """
    if request.method == "POST" and links.just_used(used.row) and form.validate_on_submit():
        try:
            user = _owner(used.row)
        except links.LinkError:
            user = None
        if user is not None and verify_password(user.password_hash, form.password.data or ""):
            return _password_changed(user, waiting)
    return error_page("invalid_link", str(used))


def _owner(row: AccountToken) -> User | None:
    """Return the user a reset link is for: its own, or the legacy user moved over under its address."""
    return links.user_of(row) or stores.by_id(row.connection_id).find(row.email)


def _password_changed(user: User, waiting: AuthorizationRequest | None) -> Response:
    """Say that the new password is set, and offer to sign in with it."""
    return _page("notice.html", title="Password changed", waiting=waiting,
                 message="Your new password is set, and every device was signed out. Sign in with it now.",
                 link=url_for("pages.login", state=waiting.id if waiting else None, email=user.email),
                 link_text="Sign in")


@bp.route("/u/account", methods=["GET", "POST"])
def account() -> BaseResponse:
    """Show the signed-in user's account: verification, password change, signing out everywhere."""
    user = _signed_in_user()
    if user is None:
        return redirect(url_for("pages.login"))
    return _account_page(user)


@bp.post("/u/account/password")
@per_ip("RATELIMIT_LOGIN")
def change_password() -> BaseResponse:
    """Change the password after checking the current one."""
    sso, user = current_session(), _signed_in_user()
    if sso is None or user is None:
        return redirect(url_for("pages.login"))
    form = ChangePasswordForm(prefix="pw")

    if not form.validate_on_submit():
        return _account_page(user, 400, form)
    store = stores.by_id(user.connection_id)
    if wait := throttle.begin(user.connection_id, user.email):
        _log_failure(events.FAILED_CHANGE_PASSWORD, _wait_message(wait), store, None, user=user)
        response = _account_page(user, 429, form, error=_wait_message(wait))
        response.headers["Retry-After"] = str(wait.seconds)
        return response
    if not verify_password(user.password_hash, form.current.data or ""):
        if throttle.failed(user.connection_id, user.email):
            mails.locked(user)
        _log_failure(events.FAILED_CHANGE_PASSWORD, "Wrong current password.", store, None, user=user)
        form.current.errors = ["That is not your current password."]
        return _account_page(user, 400, form)
    throttle.clear(user.connection_id, user.email)
    if problem := policy_error(form.password.data or "", user.email):
        form.password.errors = [problem]
        _log_failure(events.FAILED_CHANGE_PASSWORD, f"PasswordStrengthError: {problem}", store, None,
                     user=user)
        return _account_page(user, 400, form)
    _log(events.SUCCESS_CHANGE_PASSWORD, "Password changed", store, None, user=user,
         details={"via": "account"})
    set_password(user, form.password.data or "", keep_session=sso.id)  # commits the event with it
    return _account_page(user, notice="Password changed. Your other devices were signed out.")


@bp.post("/u/account/sign-out-everywhere")
def sign_out_everywhere() -> BaseResponse:
    """End every session of the user, this one included, and revoke their refresh tokens."""
    user = _signed_in_user()
    if user is not None and ActionForm().validate_on_submit():
        accounts.sign_out_everywhere(user.id)
        db.session.commit()
        end_session()
        return _page("notice.html", title="Signed out everywhere",
                     message="Every device and application signed in with your account was signed out.",
                     link=url_for("pages.login"), link_text="Sign in again")
    return redirect(url_for("pages.account"))


@bp.post("/u/account/verify-email")
def resend_verification() -> BaseResponse:
    """Send the verification mail again."""
    user = _signed_in_user()
    if user is None or not ActionForm().validate_on_submit():
        return redirect(url_for("pages.account"))
    if not user.email_verified:
        mails.verification(user)
        db.session.commit()
    return _account_page(user, notice=f"We sent a new verification link to {user.email}.")


@bp.route("/u/consent", methods=["GET", "POST"])
def consent() -> BaseResponse:
    """Let the user allow a third-party application the scopes it asks for."""
    waiting = pending.find(request.args.get("state"))
    sso = current_session()
    client = pending.client_of(waiting)
    if waiting is None or sso is None or client is None:
        return _continue(waiting) if waiting else redirect(url_for("pages.login"))
    form = ConsentForm()
    audience = waiting.params.get("audience")
    items = consented_items(client.get_allowed_scope(waiting.params.get("scope")), audience)
    if form.validate_on_submit():
        if form.allow.data:
            row = db.session.scalar(
                select(Consent).where(Consent.user_id == sso.user_id, Consent.client_id == client.id)
            )
            if row is None:
                row = Consent(user_id=sso.user_id, client_id=client.id, scope="")
                db.session.add(row)
            row.scope = " ".join(sorted(set(row.scope.split()) | set(items)))
        pending.decide(waiting, allowed=bool(form.allow.data))
        return _continue(waiting)
    return _page("consent.html", form=form, waiting=waiting, scopes=items)
