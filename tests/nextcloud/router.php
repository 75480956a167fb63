<?php
/*
 * Router for PHP's built-in web server serving a Nextcloud tree, for tests on loopback only:
 *
 *     php -S 127.0.0.1:8932 -t STATE/nextcloud STATE/router.php
 *
 * (tests/nextcloud/server.sh copies this file to STATE/router.php and starts the server.)
 *
 * Without a router, PHP's server serves every file under the document root: /occ as source text,
 * /config/config.php executed, /data/... This router does what the nginx configuration in
 * Nextcloud's admin manual does:
 *
 *  1. A request for an entry-point script goes to PHP's server untouched, whatever follows the
 *     script: /remote.php/dav/files/alice/.hidden, /ocs/v2.php/..., /index.php/..., /status.php.
 *     PHP's server runs the script and sets PATH_INFO itself.
 *  2. Private paths answer 404: /config, /data, /lib, /3rdparty, /templates, /build, /tests,
 *     /occ, /console.php, /autotest*, /db_*, /issue*, /indie*, and every path with a segment
 *     starting with a dot (.htaccess, .user.ini, ...), except /.well-known.
 *  3. /.well-known/caldav and /.well-known/carddav redirect to /remote.php/dav/.
 *  4. An existing file that is not PHP is served as it is (CSS, JS, images, robots.txt).
 *  5. Everything else (pretty URLs such as /apps/files/ or /login, other /.well-known paths,
 *     any other PHP file) goes to index.php as the front controller, as nginx's
 *     "/index.php$request_uri" rewrite does.
 *
 * The path is judged after percent-decoding and resolving "." and ".." segments, as PHP's server
 * does before it looks a file up, so /remote.php/../config/config.php or /%63onfig/ are caught.
 */

$root = rtrim($_SERVER['DOCUMENT_ROOT'], '/');
$raw = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
$segments = [];
foreach (explode('/', rawurldecode(is_string($raw) ? $raw : '/')) as $segment) {
	if ($segment === '' || $segment === '.') {
		continue;
	}
	if ($segment === '..') {
		array_pop($segments);
		continue;
	}
	$segments[] = $segment;
}
$path = '/' . implode('/', $segments);

// 1. Entry points, and everything below them.
$entryPoints = '#^/(?:index\.php|remote\.php|public\.php|status\.php|cron\.php|ocs/v[12]\.php'
	. '|ocs-provider|core/ajax/update\.php)(?:/|$)#';
if ($path === '/' || preg_match($entryPoints, $path)) {
	return false;
}

// 2. Private paths.
$private = '#^/(?:(?:build|tests|config|lib|3rdparty|templates|data)(?:/|$)|occ|console\.php|autotest|db_|issue|indie)#';
$dotSegment = false;
foreach ($segments as $i => $segment) {
	if ($segment[0] === '.' && !($i === 0 && $segment === '.well-known')) {
		$dotSegment = true;
	}
}
if ($dotSegment || preg_match($private, $path)) {
	http_response_code(404);
	header('Content-Type: text/plain; charset=utf-8');
	echo "Not Found\n";
	return true;
}

// 3. CalDAV and CardDAV discovery.
if ($path === '/.well-known/caldav' || $path === '/.well-known/carddav') {
	header('Location: /remote.php/dav/', true, 301);
	return true;
}

// 4. Static files.
if (is_file($root . $path) && strtolower(pathinfo($path, PATHINFO_EXTENSION)) !== 'php') {
	return false;
}

// 5. Front controller. Nextcloud derives its web root and the route from SCRIPT_NAME,
// SCRIPT_FILENAME and REQUEST_URI (kept as the client sent it).
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $root . '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
unset($_SERVER['PATH_INFO'], $_SERVER['ORIG_PATH_INFO'], $_SERVER['PATH_TRANSLATED']);
chdir($root);
unset($root, $raw, $segments, $segment, $i, $path, $entryPoints, $private, $dotSegment);
require $_SERVER['SCRIPT_FILENAME'];
return true;
