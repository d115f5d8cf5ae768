"""`wxtoken console`: a local web console for admins, over the same library calls as the CLI.

    security.py    the access model: loopback Host, one-time start token, session, CSRF, headers
    app.py         the Console state, page rendering, dashboard and profile routes
    actions.py     the profile page's buttons (probe, refresh, export, mark current, revoke)
    wizard.py      connect a recorder: preset, developer portal, credentials
    signin.py      browser and device-code sign-in on worker threads, polled by the page
    keeperpage.py  the keeper's state, schedule, channels and a test alert
    views.py       what the pages show, from status.profile_status and the event log
    timeline.py    the expiry timeline as server-rendered SVG
    server.py      loopback sockets, uvicorn, the start address, the browser

Importing this package loads nothing else: `wxtoken --help` reads the default port here.
"""

DEFAULT_PORT = 8766  # next to the redirect URI's usual 8765
