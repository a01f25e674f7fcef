<?php
// Generates php_fixtures.json with the real php-cli (php gen_php.php):
// session data as PHP's "php" and "php_serialize" handlers encode it, and
// serialize() of each value kind. Its output is committed.
class Cart { public $items = [1, 2]; private $secret = "x"; protected $p = null; }
enum Suit: string { case Hearts = "H"; }
$vars = [
    "user_id" => 42,
    "auth" => ["id" => "u-7", "roles" => ["admin", "user"], "ok" => true],
    "ratio" => 0.1,
    "nothing" => null,
    "cart" => new Cart(),
    "suit" => Suit::Hearts,
    "name|odd" => "skipped by the php handler", // '|' in a name: PHP refuses it in 'php'
    "utf8" => "héllo \"quoted\"; {}",
];
$out = [];
foreach (["php", "php_serialize"] as $h) {
    ini_set("session.serialize_handler", $h);
    ini_set("session.save_path", sys_get_temp_dir());
    session_id("fixture" . $h . "0123456789abcdef");
    @session_start();
    $_SESSION = $vars;
    if ($h === "php") { unset($_SESSION["name|odd"]); }
    $out["session_" . $h] = base64_encode(session_encode());
    @session_destroy();
}
$ref = ["a" => 1]; $ref["b"] = &$ref["a"];
$out["serialize"] = [];
foreach ([null, true, false, 0, -9223372036854775807 - 1, 3.5, -0.0, INF, NAN, 1e100, "", "a\"b;c", [], [1, "x" => [2]], new Cart(), Suit::Hearts, $ref, new ArrayObject([1])] as $v) {
    $out["serialize"][] = base64_encode(serialize($v));
}
$out["php_version"] = PHP_VERSION;
echo json_encode($out, JSON_PRETTY_PRINT), "\n";
