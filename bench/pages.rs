//! The pages and bodies the benches and the bench server share: a realistic
//! edit page with one post form (4 KB, and a 100 KB variant with a long
//! list above the form) and a 1 KB urlencoded submission.
#![allow(dead_code)]

/// The token's form field.
pub const FIELD: &str = "_concurrency_token";

fn head(title: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Inventory</title>
<link rel="stylesheet" href="/static/site.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<script src="/static/htmx.min.js" defer></script>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 60rem; }}
  nav a {{ margin-right: 1rem; }} .field {{ display: grid; gap: .25rem; margin: .75rem 0; }}
</style>
</head>
<body>
<header class="site-header">
  <nav aria-label="Main">
    <a href="/">Home</a><a href="/items">Items</a><a href="/orders">Orders</a>
    <a href="/suppliers">Suppliers</a><a href='/reports'>Reports</a><a href=/settings>Settings</a>
  </nav>
  <form method="get" action="/search" role="search"><input type="search" name="q" placeholder="Search items"></form>
</header>
<main>
"#
    )
}

const FORM: &str = r#"<h1>Edit item 42: Desk lamp</h1>
<p class="meta">Last changed by <strong>ann</strong> on 2024-05-01 10:21. In stock: <span id="stock">17</span>.</p>
<form method="post" action="/items/42" class="edit-form" enctype="application/x-www-form-urlencoded">
  <div class="field"><label for="name">Name</label><input id="name" name="name" value="Desk lamp" required maxlength="120"></div>
  <div class="field"><label for="sku">SKU</label><input id="sku" name="sku" value="LMP-0042" pattern="[A-Z]{3}-[0-9]{4}"></div>
  <div class="field"><label for="price">Price</label><input id="price" name="price" type="number" step="0.01" value="39.90"></div>
  <div class="field"><label for="supplier">Supplier</label>
    <select id="supplier" name="supplier"><option value="1">Acme</option><option value="2" selected>Lumen &amp; Co</option><option value="3">Brightside</option></select></div>
  <div class="field"><label for="description">Description</label>
    <textarea id="description" name="description" rows="4">An adjustable desk lamp with a weighted base.</textarea></div>
  <div class="field"><label><input type="checkbox" name="active" checked> Active</label></div>
  <button type="submit" class="primary">Save</button> <a href="/items/42" class="secondary">Cancel</a>
</form>
"#;

fn foot() -> String {
    r#"</main>
<footer class="site-footer"><p>&copy; 2024 Inventory Ltd. · <a href="/help">Help</a> · <a href="/privacy">Privacy</a></p></footer>
<script>document.querySelectorAll('form.edit-form').forEach(f => f.addEventListener('submit', () => f.classList.add('busy')));</script>
</body>
</html>
"#
    .to_owned()
}

fn history_row(i: usize) -> String {
    format!(
        "<tr class=\"row-{parity}\"><td><time datetime=\"2024-04-{day:02}\">2024-04-{day:02}</time></td><td>user{i}</td><td>Changed <em>price</em> from {a}.00 to {b}.50</td><td><a href=\"/items/42/history/{i}\">details</a></td></tr>\n",
        parity = if i % 2 == 0 { "even" } else { "odd" },
        day = i % 28 + 1,
        a = 30 + i % 10,
        b = 31 + i % 10,
    )
}

/// An edit page with one post form, padded with history rows (and a
/// trailing comment) to exactly `size` bytes.
pub fn page(size: usize) -> String {
    let mut page = head("Edit item 42");
    page.push_str(FORM);
    page.push_str("<h2>History</h2>\n<table class=\"history\"><thead><tr><th>When</th><th>Who</th><th>What</th><th></th></tr></thead><tbody>\n");
    let tail = "</tbody></table>\n".to_owned() + &foot();
    let mut i = 0;
    loop {
        let row = history_row(i);
        if page.len() + row.len() + tail.len() + 8 > size {
            break;
        }
        page.push_str(&row);
        i += 1;
    }
    page.push_str("</tbody></table>\n");
    let pad = size.saturating_sub(page.len() + foot().len());
    if pad >= 7 {
        page.push_str("<!--");
        page.push_str(&"-".repeat(pad - 7));
        page.push_str("-->");
    }
    page.push_str(&foot());
    page
}

/// A 1 KB urlencoded submission of the edit form carrying `token`.
pub fn post_body(token: &str) -> String {
    let pairs = [
        (FIELD, token),
        ("name", "Desk lamp"),
        ("sku", "LMP-0042"),
        ("price", "39.90"),
        ("supplier", "2"),
        ("active", "on"),
    ];
    let encode = |description: &str| {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.extend_pairs(pairs);
        body.append_pair("description", description);
        body.finish()
    };
    let room = 1024usize.saturating_sub(encode("").len());
    // Letters, spaces and periods only: each encodes to one byte.
    let words = "An adjustable desk lamp with a weighted base and a warm LED. ";
    let description: String = words.chars().cycle().take(room).collect();
    encode(&description)
}
