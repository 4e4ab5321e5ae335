"""SIP phones and browser users created at run time, without a reload (`ivrpowers endpoint ...`).

- `fields`: what a phone or browser endpoint is made of; pjsip.conf's templates are rendered from it;
- `accounts`: names, generated passwords and their digests (a password is never stored);
- `push`: an account into, or out of, a running Asterisk over ARI's dynamic configuration;
- `sync`: the controller pushes every account again each time it connects (`EndpointSync`);
- `presence`: whether an endpoint can ring now, and its changes (`Presence`, `reachable_now`).

The accounts themselves are rows of `ivrpowers.store.endpoints`. docs/endpoints.md tells the whole story.
"""
