<?php
// The legacy PHP app of issue 12's tests, run as the router script of PHP's
// built-in server:
//
//   php -S 127.0.0.1:PORT -d session.save_handler=redis \
//       -d session.save_path="tcp://127.0.0.1:REDISPORT" app.php
//
// (optionally -d session.serialize_handler=php_serialize). Sessions are
// phpredis's: PHPREDIS_SESSION:<id> in Redis, the id in the PHPSESSID cookie.
//
// Environment: USERS, the password table "id:password,id:password";
// ID_TYPE "string" (default) or "number", how the user id is stored.
// Routes: POST /login {"user_id","password"}, GET /me, POST /logout.
declare(strict_types=1);

function reply(int $status, ?array $body = null): void
{
    http_response_code($status);
    if ($body !== null) {
        header('Content-Type: application/json');
        echo json_encode($body);
    }
}

function passwords(): array
{
    $table = [];
    foreach (explode(',', (string) getenv('USERS')) as $entry) {
        $i = strpos($entry, ':');
        if ($i !== false && $i > 0) {
            $table[substr($entry, 0, $i)] = substr($entry, $i + 1);
        }
    }
    return $table;
}

// Opening a session for a request that has no cookie would create (and
// store) an empty one: /me and /logout only look at an existing session.
function has_session_cookie(): bool
{
    return isset($_COOKIE[session_name()]) && $_COOKIE[session_name()] !== '';
}

ini_set('session.cookie_httponly', '1');
ini_set('session.cookie_samesite', 'Lax');

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';

if ($path === '/login' && $method === 'POST') {
    $body = json_decode((string) file_get_contents('php://input'), true);
    $id = is_array($body) && is_string($body['user_id'] ?? null) ? $body['user_id'] : '';
    $pw = is_array($body) && is_string($body['password'] ?? null) ? $body['password'] : '';
    $table = passwords();
    if ($id === '' || !array_key_exists($id, $table) || !hash_equals($table[$id], $pw)) {
        reply(401, ['error' => 'invalid_credentials']);
        return true;
    }
    session_start();
    // A new id at login (session fixation), the old session deleted.
    session_regenerate_id(true);
    $_SESSION['user_id'] = getenv('ID_TYPE') === 'number' ? (int) $id : $id;
    $_SESSION['login_at'] = time();
    session_write_close();
    reply(200, ['user_id' => $id]);
    return true;
}

if ($path === '/me' && $method === 'GET') {
    if (!has_session_cookie()) {
        reply(401, ['error' => 'unauthenticated']);
        return true;
    }
    session_start(['read_and_close' => true]);
    if (!isset($_SESSION['user_id'])) {
        reply(401, ['error' => 'unauthenticated']);
        return true;
    }
    reply(200, ['user_id' => (string) $_SESSION['user_id']]);
    return true;
}

if ($path === '/logout' && $method === 'POST') {
    if (has_session_cookie()) {
        session_start();
        $_SESSION = [];
        session_destroy();
        $p = session_get_cookie_params();
        setcookie(session_name(), '', ['expires' => 1, 'path' => $p['path'], 'httponly' => true, 'samesite' => 'Lax']);
    }
    reply(204);
    return true;
}

reply(404, ['error' => 'not_found']);
return true;
