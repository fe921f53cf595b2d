//! Running code at an element's end tag in lol_html, as the HTML passes
//! over a page (the app page's survey and rewrite, debug mode's render
//! check) need to: "this form (label, select, textarea) is over now".

use lol_html::html_content::Element;

/// Runs `f` when `el`'s end tag is reached; nothing for an element that
/// has no end tag (a void element, or one closed by `/>`).
pub(crate) fn on_end_tag(el: &mut Element<'_, '_>, f: impl FnOnce() + 'static) {
    let handler: lol_html::EndTagHandler<'static> = Box::new(move |_| {
        f();
        Ok(())
    });
    let _ = el.on_end_tag(handler);
}
