"""The clients page: every registered application, and one client's settings with its redirect URIs,
which can be changed here by the rules `idp clients update` checks (creating and deleting stay in the CLI)."""

from flask import Response, redirect, request, url_for
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from idp.admin import audit
from idp.admin.views import bp, render
from idp.connections import registry
from idp.db import db
from idp.oauth import clients as registered
from idp.oauth.models import Client

MAX_URIS = 100  # more lines than any real client needs: a paste gone wrong


def _connection_names() -> dict[str, str]:
    return {c.id: c.name for c in registry.all_connections()}


def _client(client_id: str) -> Client:
    client = db.session.get(Client, client_id) if len(client_id) <= 64 else None
    if client is None:
        raise NotFound("There is no client with this id.")
    return client


def _lines(text: str) -> list[str]:
    """Return the URIs of a text area, one a line, blank lines dropped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _sentence(text: str) -> str:
    """The CLI's message, as a sentence on the page."""
    return f"Not saved: {text}."


@bp.get("/clients")
def clients() -> Response:
    """Every client, oldest first: kind, party, connection, redirect URIs; the dashboard's own marked."""
    return render("admin/clients.html", clients=registered.list_clients(), connections=_connection_names())


def _detail(client: Client, status: int = 200, error: str | None = None, redirects: str | None = None,
            logouts: str | None = None) -> Response:
    return render("admin/client.html", status=status, client=client, connections=_connection_names(),
                  error=error, updated=request.args.get("updated") == "1",
                  redirects="\n".join(client.redirect_uris) if redirects is None else redirects,
                  logouts="\n".join(client.post_logout_redirect_uris) if logouts is None else logouts)


@bp.get("/clients/<client_id>")
def client_detail(client_id: str) -> Response:
    """One client's settings and client_metadata, never its secret; a form for its redirect URIs."""
    return _detail(_client(client_id))


@bp.post("/clients/<client_id>")
def update_client(client_id: str) -> BaseResponse:
    """Replace a client's redirect and post-logout redirect URIs, checked as `idp clients update` checks."""
    client = _client(client_id)
    redirects = request.form.get("redirect_uris", "")
    logouts = request.form.get("post_logout_redirect_uris", "")
    if client.dashboard:
        # Its URIs follow IDP_ISSUER: the next sign-in would set them back.
        return _detail(client, 409, "The dashboard's own URIs follow the issuer and cannot be changed here.")
    new_redirects, new_logouts = _lines(redirects), _lines(logouts)
    if len(new_redirects) > MAX_URIS or len(new_logouts) > MAX_URIS:
        return _detail(client, 400, f"At most {MAX_URIS} URIs of each kind.", redirects, logouts)
    before = {"redirect_uris": list(client.redirect_uris),
              "post_logout_redirect_uris": list(client.post_logout_redirect_uris)}
    try:
        changed = registered.update_client(client.id, redirect_uris=new_redirects,
                                        post_logout_redirect_uris=new_logouts)
    except registered.InvalidClientMetadata as refused:
        db.session.rollback()
        return _detail(_client(client_id), 400, _sentence(str(refused)), redirects, logouts)
    if changed is None:  # deleted in between
        raise NotFound("There is no client with this id.")
    audit.record("Client updated", {
        "client": {"client_id": changed.id, "name": changed.name}, "before": before,
        "after": {"redirect_uris": changed.redirect_uris,
                  "post_logout_redirect_uris": changed.post_logout_redirect_uris},
    }, client_id=changed.id, client_name=changed.name)
    db.session.commit()
    return redirect(url_for("admin.client_detail", client_id=changed.id, updated=1), 303)
