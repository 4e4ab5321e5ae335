"""What every phone and browser endpoint is made of, in one place.

pjsip.conf's templates (`agent-phone`, `agent-auth`, `agent-aor`, `webrtc-user`) are rendered from
these definitions (`render_templates`, filled into the template by `asterisk/conf.py`), and the
endpoints created at run time are pushed over ARI with the same options (`objects`): Asterisk's
dynamic objects cannot inherit from a template, so the options themselves must be shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple, get_args

if TYPE_CHECKING:
    from ivrpowers.config import Settings

Kind = Literal["phone", "webrtc"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# The digest realm of every endpoint created at run time: a phone hashes user:realm:password with it,
# and Asterisk keeps only that hash (`password_digest`). Kept per endpoint in the database too, so a
# later change of this constant does not invalidate the passwords already given out.
REALM = "ivrpowers"

# Replaced by the configured bind address (`media_address`): RTP on it, never on 0.0.0.0.
BIND = "{bind}"
# Replaced by the address browsers send media to (settings' `browser_media_address`): Asterisk never
# offers a loopback ICE candidate, so a browser's RTP cannot use the bind address when it is 127.x.
MEDIA = "{media}"


class Addresses(NamedTuple):
    bind: str  # SIP phones' and the trunk's RTP
    media: str  # browsers' RTP (ICE host candidate)

    @classmethod
    def of(cls, settings: Settings) -> Addresses:
        return cls(settings.bind_address, settings.browser_media_address)

    def fill(self, value: str) -> str:
        return value.replace(BIND, self.bind).replace(MEDIA, self.media)


@dataclass(frozen=True)
class Option:
    name: str
    value: str
    why: str = ""  # a comment in pjsip.conf


@dataclass(frozen=True)
class Template:
    """A pjsip.conf template (`[name](!)`): the options shared by every object made from it."""

    name: str
    type: str  # endpoint, auth, aor
    why: str
    options: tuple[Option, ...]

    def fields(self, addresses: Addresses) -> list[tuple[str, str]]:
        return [(o.name, addresses.fill(o.value)) for o in self.options]


PHONE = Template("agent-phone", "endpoint", "SIP desk phones and softphones: digest auth, registration", (
    Option("identify_by", "username"),
    Option("context", "from-agents"),
    Option("trust_id_inbound", "no", "a phone's P-Asserted-Identity is ignored: its callerid is ours"),
    Option("transport", "transport-udp"),
    Option("disallow", "all"),
    Option("allow", "ulaw,alaw,gsm,opus"),
    Option("dtmf_mode", "rfc4733"),
    Option("direct_media", "no"),
    Option("rtp_symmetric", "yes"),
    Option("media_address", BIND),
    Option("bind_rtp_to_media_address", "yes"),
    Option("force_rport", "yes"),
    Option("rewrite_contact", "yes"),
))

WEBRTC = Template("webrtc-user", "endpoint", "browsers over SIP/websocket, audio and video", (
    Option("identify_by", "username"),
    Option("context", "from-webrtc"),
    Option("trust_id_inbound", "no"),
    Option("transport", "transport-ws"),
    Option("webrtc", "yes", "avpf, ICE, DTLS (actpass), rtcp-mux, bundle"),
    Option("dtls_auto_generate_cert", "yes"),
    Option("media_address", MEDIA, "the ICE host candidate: never 127.x (Asterisk skips loopback)"),
    Option("bind_rtp_to_media_address", "yes"),
    Option("direct_media", "no"),
    Option("dtmf_mode", "rfc4733"),
    Option("max_audio_streams", "1"),
    Option("max_video_streams", "4"),
    Option("disallow", "all"),
    Option("allow", "opus,ulaw,vp8,h264"),
    # One codec per stream in Asterisk's answers: Asterisk passes video through untranscoded, so a
    # caller whose answer listed VP8 and H.264 could send one while an agent rung with both sends
    # the other, and neither could decode what it got.
    Option("preferred_codec_only", "yes", "answer with one codec per stream (video is never transcoded)"),
    # And offer a browser only the codecs of the call it is rung for (a video caller's, given as the
    # originator), not every codec it allows: an agent that chose VP8 for an H.264 caller could
    # neither send nor get a picture.
    Option("outgoing_call_offer_pref", "remote", "offer only the codecs of the call it is rung for"),
))

# The demo's own accounts (agent1, webrtc1) keep their generated password in secrets.json, in plain:
# `userpass`. Endpoints created at run time use `digest` with a hash instead (`auth_fields`).
AUTH = Template("agent-auth", "auth", "", (Option("auth_type", "userpass"),))

AOR = Template("agent-aor", "aor", "", (
    Option("max_contacts", "1"),
    Option("remove_existing", "yes"),
    Option("qualify_frequency", "30"),
))

TEMPLATES = (PHONE, AUTH, AOR, WEBRTC)
ENDPOINT_TEMPLATE: dict[Kind, Template] = {"phone": PHONE, "webrtc": WEBRTC}


def render_templates(addresses: Addresses) -> str:
    """The templates' pjsip.conf sections, with `addresses` filled in."""
    sections = []
    for template in TEMPLATES:
        head = f"[{template.name}](!)"
        lines = [f"{head:<32}; {template.why}" if template.why else head, f"type = {template.type}"]
        for option in template.options:
            line = f"{option.name} = {addresses.fill(option.value)}"
            lines.append(f"{line:<32}; {option.why}" if option.why else line)
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


@dataclass(frozen=True)
class ConfigObject:
    """One PJSIP object as ARI's dynamic configuration takes it: /asterisk/config/dynamic/res_pjsip/TYPE/ID."""

    type: str
    id: str
    fields: list[tuple[str, str]]


def objects(name: str, kind: Kind, realm: str, password_digest: str, addresses: Addresses) -> list[ConfigObject]:
    """The auth, AOR and endpoint of one account, in the order they must be created (the endpoint
    names the other two); delete them in the reverse order.

    The callerid is the account's name: a phone's calls show it whatever the phone puts in From.
    """
    endpoint = [*ENDPOINT_TEMPLATE[kind].fields(addresses), ("auth", name), ("aors", name),
                ("callerid", f'"{name}" <{name}>')]
    return [
        ConfigObject("auth", name, auth_fields(name, realm, password_digest)),
        ConfigObject("aor", name, AOR.fields(addresses)),
        ConfigObject("endpoint", name, endpoint),
    ]


def auth_fields(name: str, realm: str, password_digest: str) -> list[tuple[str, str]]:
    """Digest authentication with the hash alone (Asterisk 22: `auth_type=digest`, `password_digest`)."""
    return [("auth_type", "digest"), ("username", name), ("realm", realm), ("password_digest", password_digest)]
