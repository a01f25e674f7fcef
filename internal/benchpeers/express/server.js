// The Node peer of `make bench-peers`: Express with express-session on
// connect-redis, as their READMEs set them up. POST /login stores the user in
// the session; GET /auth/me answers it (401 without a session). Per request
// express-session unsigns the cookie (HMAC-SHA256), GETs and JSON-parses the
// session from Redis and, the session being unmodified, touches it (EXPIRE).
import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { createClient } from "redis";

const port = Number(process.env.PORT);
const client = createClient({ url: process.env.REDIS_URL });
client.on("error", (err) => console.error("redis", err));
await client.connect();

const app = express();
app.set("etag", false);
app.disable("x-powered-by");
app.use(
  session({
    store: new RedisStore({ client, prefix: "sess:" }),
    secret: "benchpeers-express-session-secret",
    name: "sid",
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: "lax", maxAge: 12 * 3600 * 1000 },
  }),
);
app.post("/login", (req, res, next) => {
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = { user_id: "u-alice", email: "alice@example.com" };
    res.status(204).end();
  });
});
app.get("/auth/me", (req, res) => {
  const u = req.session.user;
  if (!u) return res.status(401).json({ code: "unauthenticated" });
  res.json({ user_id: u.user_id, email: u.email, client_id: "web", roles: ["user"], scheme: "session", sid: req.sessionID });
});
app.listen(port, "127.0.0.1");
