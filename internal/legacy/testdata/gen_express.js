// node gen.js, next to an unpacked `npm pack cookie-signature@1.2.2` (./package):
// express-session's cookie for fixed ids and secrets, through
// the real cookie-signature package (express-session: 's:' + sign(id, secret),
// then encodeURIComponent when the cookie is serialized).
const sig = require('./package');
const out = [];
for (const [id, secret] of [["wSs6ZIbqXzWvG7mDcL5pA2kR9tYbN3eH", "s1"], ["wSs6ZIbqXzWvG7mDcL5pA2kR9tYbN3eH", "s0"], ["a/b+c=d.e", "k3y with spaces é"], ["x", "s1"]]) {
  out.push({id, secret, cookie: encodeURIComponent('s:' + sig.sign(id, secret))});
}
console.log(JSON.stringify({cookie_signature: require('./package/package.json').version, cookies: out}, null, 1));
