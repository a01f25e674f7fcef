// The legacy Express app of issue 12's tests: the stack the migration story
// starts from (express-session + connect-redis), configured the way a real
// product would be, so that tokenshift reads sessions exactly as they are in
// the wild. It is also the peer of issue 13's benchmark (/me answered from its
// own session), hence no per-request logging.
//
// Environment:
//   PORT       port on 127.0.0.1 (required)
//   REDIS_URL  redis:// URL of the session store (required)
//   SECRETS    cookie-signature secrets, comma separated: the first signs, all verify
//   PREFIX     connect-redis key prefix (default "sess:")
//   LAYOUT     "userId" (req.session.userId) or "passport" (req.session.passport.user)
//   COOKIE     session cookie name (default connect.sid)
//   MAX_AGE    cookie maxAge in ms (default: none, a browser-session cookie; the
//              Redis key then lives connect-redis's default TTL, one day)
//   USERS      the password table, "id:password,id:password"
//   ID_TYPE    "string" (default) or "number": how the user id is stored
"use strict";

const express = require("express");
const session = require("express-session");
const { RedisStore } = require("connect-redis");
const { createClient } = require("redis");

function env(name, def) {
  const v = process.env[name];
  return v === undefined || v === "" ? def : v;
}

const port = Number(env("PORT"));
const redisURL = env("REDIS_URL");
if (!port || !redisURL) {
  console.error("PORT and REDIS_URL are required");
  process.exit(2);
}
const secrets = env("SECRETS", "keyboard cat").split(",");
const prefix = env("PREFIX", "sess:");
const layout = env("LAYOUT", "userId");
if (layout !== "userId" && layout !== "passport") {
  console.error(`LAYOUT must be userId or passport, not ${layout}`);
  process.exit(2);
}
const cookieName = env("COOKIE", "connect.sid");
const maxAge = env("MAX_AGE") ? Number(env("MAX_AGE")) : undefined;
const idType = env("ID_TYPE", "string");

// A Map, not an object: a user id such as "__proto__" must not find anything.
const passwords = new Map();
for (const entry of env("USERS", "").split(",")) {
  const i = entry.indexOf(":");
  if (i > 0) passwords.set(entry.slice(0, i), entry.slice(i + 1));
}

function storedID(id) {
  return idType === "number" ? Number(id) : id;
}

function sessionUser(sess) {
  if (!sess) return undefined;
  if (layout === "passport") return sess.passport ? sess.passport.user : undefined;
  return sess.userId;
}

async function main() {
  const client = createClient({ url: redisURL });
  // Without a listener an error event (Redis restarted by a test) kills the process.
  client.on("error", () => {});
  await client.connect();

  const app = express();
  app.disable("x-powered-by");
  app.use(
    session({
      name: cookieName,
      secret: secrets,
      store: new RedisStore({ client, prefix }),
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: "lax", maxAge },
    }),
  );

  app.post("/login", express.json(), (req, res, next) => {
    const body = req.body || {};
    const id = typeof body.user_id === "string" ? body.user_id : "";
    const pw = typeof body.password === "string" ? body.password : "";
    if (!id || !passwords.has(id) || passwords.get(id) !== pw) {
      res.status(401).json({ error: "invalid_credentials" });
      return;
    }
    // A new id at login, as every session-fixation advice says (passport does it too).
    req.session.regenerate((err) => {
      if (err) return next(err);
      if (layout === "passport") req.session.passport = { user: storedID(id) };
      else req.session.userId = storedID(id);
      req.session.save((err) => {
        if (err) return next(err);
        res.json({ user_id: id });
      });
    });
  });

  app.get("/me", (req, res) => {
    const user = sessionUser(req.session);
    if (user === undefined || user === null) {
      res.status(401).json({ error: "unauthenticated" });
      return;
    }
    res.json({ user_id: String(user) });
  });

  app.post("/logout", (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err);
      res.clearCookie(cookieName);
      res.status(204).end();
    });
  });

  // No stack traces to the client; the status is what the tests read.
  app.use((err, req, res, _next) => {
    res.status(err.status && err.status < 500 ? err.status : 500).json({ error: "internal" });
  });

  const server = app.listen(port, "127.0.0.1", () => {
    console.log(`listening on 127.0.0.1:${port}`);
  });
  const stop = () => server.close(() => client.quit().finally(() => process.exit(0)));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
