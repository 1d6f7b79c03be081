"""The complaint desk on the web: staff sign in with a link from the bot and work their agency's
cases in a browser (server-rendered HTML, templates in bot/web/templates/, CSS in bot/web/static/).

- base: the bot's App and the channels' hooks on the aiohttp app; database work off the loop
- render: the Jinja2 environment, texts from the locales, deadlines for people
- viewer: who is signed in and which agencies' cases they may see (refusals audited)
- routes: ``add_desk_routes``, the session and CSRF checks, sign-in, logout, language
- queue: the queue page (filters, counts, time left)
- casepage: the case page (thread, reply, note, actions)
- manage: canned replies and, for admins, deactivating staff
"""
