/**
 * The console's one web page: plain HTML, CSS and a little JavaScript, nothing fetched from elsewhere.
 * It polls /api/state for what the chosen user sees, and turns typing and clicks into /api/… calls
 * that the console server signs and sends to quell as Slack would.
 */
import { escapeHtml } from './render-block-kit.ts';

/** What the first screen shows besides the conversation. */
export interface PageInfo {
  banner: { kind: 'rehearsal' | 'real' | 'none'; text: string; detail: string };
  command: string;
  users: { id: string; name: string; role: string }[];
  channels: { id: string; name: string }[];
  /** Commands to try (one click fills the message box). */
  suggestions: string[];
  /** Text about the seeded world (rehearsal) or the configured accounts. */
  scenario: string[];
  /** How to connect real Slack: one line per variable. */
  connectSlack: string[];
}

const STYLE = `
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d1c1d;background:#f8f8f8}
.banner{padding:10px 16px;font-weight:700;font-size:16px;color:#fff}.banner.rehearsal{background:#b35c00}.banner.real{background:#c0152f}.banner.none{background:#555}
.banner small{display:block;font-weight:400;font-size:13px}
.layout{display:grid;grid-template-columns:230px 1fr 330px;height:calc(100vh - 64px)}
nav{background:#3f0e40;color:#fff;padding:12px;overflow:auto}nav button{display:block;width:100%;text-align:left;background:none;border:0;color:#ddd;padding:5px 8px;border-radius:4px;cursor:pointer;font:inherit}
nav button.active{background:#1164a3;color:#fff}nav h3{font-size:12px;text-transform:uppercase;opacity:.7;margin:14px 0 4px}
nav select{width:100%;padding:4px}
main{display:flex;flex-direction:column;min-width:0}#feed{flex:1;overflow:auto;padding:12px 18px}
aside{border-left:1px solid #ddd;padding:12px;overflow:auto;background:#fff;font-size:13px}
.entry{border-bottom:1px solid #eee;padding:8px 0}.message{padding:4px 0}.author{font-weight:700}.app{font-size:10px;background:#ddd;padding:0 3px;border-radius:2px;font-weight:400}
.is-ephemeral{background:#f4f8fc;border-left:3px solid #1164a3;padding-left:8px}.ephemeral{font-size:12px;color:#616061}
.thread{margin-left:28px;border-left:2px solid #ddd;padding-left:10px}
.b-header{font-size:17px;font-weight:800;margin:6px 0}.b-section{display:flex;gap:12px;margin:4px 0}.b-text{flex:1;min-width:0;overflow-wrap:anywhere}
.b-fields{display:grid;grid-template-columns:1fr 1fr;gap:4px 16px;margin-top:4px}.b-context{color:#616061;font-size:12px;margin:4px 0}
.b-actions{display:flex;gap:8px;flex-wrap:wrap;margin:6px 0}.b-divider{border:0;border-top:1px solid #ddd}
.button{border:1px solid #bbb;background:#fff;border-radius:4px;padding:4px 12px;font:inherit;font-weight:700;cursor:pointer;color:#1d1c1d;text-decoration:none}
.button.primary{background:#007a5a;color:#fff;border-color:#007a5a}.button.danger{background:#e01e5a;color:#fff;border-color:#e01e5a}
pre{background:#f4f4f4;border:1px solid #ddd;padding:6px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px}code{background:#f4f4f4;border:1px solid #e4e4e4;padding:0 3px;color:#c01343}
.mention{background:#e8f5fa;color:#1264a3;padding:0 2px}.muted{color:#777;font-size:12px}
form#say{display:flex;gap:8px;padding:10px 18px;border-top:1px solid #ddd;background:#fff}#text{flex:1;padding:8px;font:inherit;border:1px solid #aaa;border-radius:6px}
.overlay{position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;align-items:center;justify-content:center}.overlay[hidden]{display:none}
.modal,.dialog{background:#fff;border-radius:8px;padding:18px;width:480px;max-height:90vh;overflow:auto}.modal-title{font-weight:800;font-size:17px;margin-bottom:8px}
.modal-buttons{display:flex;justify-content:flex-end;gap:8px;margin-top:12px}.input{display:block;margin:8px 0}.input .label{display:block;font-weight:700}.field{width:100%;padding:6px;font:inherit}
.error{color:#c0152f;font-size:12px}.file summary{cursor:pointer}.suggest{display:block;margin:3px 0;font-family:monospace;font-size:12px;text-align:left;cursor:pointer;background:#f4f4f4;border:1px solid #ddd;padding:3px;width:100%}
`;

const SCRIPT = `
const state={user:null,channel:null,version:-1};
const $=(s)=>document.querySelector(s);
async function post(path,body){const r=await fetch(path,{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify(body),credentials:'same-origin'});return r.json().catch(()=>({}));}
function pickChannel(id){state.channel=id;state.version=-1;document.querySelectorAll('nav [data-channel]').forEach(b=>b.classList.toggle('active',b.dataset.channel===id));$('#say').hidden=id==='home';if(id==='home')post('/api/home',{user:state.user});refresh();}
async function refresh(){
  const r=await fetch('/api/state?user='+encodeURIComponent(state.user)+'&channel='+encodeURIComponent(state.channel),{credentials:'same-origin'});
  if(!r.ok){$('#feed').textContent='The console refused this page (HTTP '+r.status+'): open the URL quell printed.';return;}
  const s=await r.json();
  if(s.version!==state.version){state.version=s.version;const feed=$('#feed');const atEnd=feed.scrollTop+feed.clientHeight>=feed.scrollHeight-40;feed.innerHTML=s.html;if(atEnd)feed.scrollTop=feed.scrollHeight;
    const ov=$('#modal');if(s.modal){ov.innerHTML=s.modal;ov.hidden=false;}else{ov.innerHTML='';ov.hidden=true;}}
}
function ask(confirm){return new Promise((resolve)=>{const d=$('#confirm');d.querySelector('.dialog-title').textContent=confirm.title;d.querySelector('.dialog-text').textContent=confirm.text;
  const yes=d.querySelector('[data-confirm-yes]');const no=d.querySelector('[data-confirm-no]');yes.textContent=confirm.confirm;no.textContent=confirm.deny;d.hidden=false;
  const done=(v)=>{d.hidden=true;yes.onclick=null;no.onclick=null;resolve(v);};yes.onclick=()=>done(true);no.onclick=()=>done(false);});}
document.addEventListener('click',async(e)=>{
  const t=e.target.closest('button');if(!t)return;
  if(t.dataset.suggest){$('#text').value=t.dataset.suggest;$('#text').focus();return;}
  if(t.dataset.channel){pickChannel(t.dataset.channel);return;}
  if(t.dataset.modalClose){await post('/api/close-modal',{user:state.user});state.version=-1;refresh();return;}
  if(!t.dataset.actionId)return;
  if(t.dataset.confirm&&!(await ask(JSON.parse(t.dataset.confirm))))return;
  const m=t.closest('.message');
  await post('/api/click',{user:state.user,surface:state.channel==='home'?'home':'message',channel:m?m.dataset.channel:'',ts:m?m.dataset.ts:'',threadTs:m?m.dataset.threadTs:'',actionId:t.dataset.actionId,blockId:t.dataset.blockId,value:t.dataset.value,text:t.dataset.text});
  setTimeout(refresh,150);
});
document.addEventListener('submit',async(e)=>{
  e.preventDefault();
  if(e.target.id==='say'){const text=$('#text').value.trim();if(!text)return;$('#text').value='';
    const r=await post('/api/command',{user:state.user,channel:state.channel,text});if(r.error)alert(r.error);setTimeout(refresh,150);return;}
  if(e.target.classList.contains('modal')){const values={};
    e.target.querySelectorAll('.field').forEach(f=>{const b=f.dataset.blockId,a=f.dataset.actionId;values[b]=values[b]||{};
      values[b][a]=f.dataset.type==='static_select'?{type:'static_select',selected_option:f.value?{value:f.value}:null}:{type:f.dataset.type||'plain_text_input',value:f.value};});
    const r=await post('/api/submit',{user:state.user,values});
    e.target.querySelectorAll('[data-error-for]').forEach(x=>{x.textContent=(r.errors||{})[x.dataset.errorFor]||'';});
    if(!r.errors){state.version=-1;refresh();}}
});
$('#user').addEventListener('change',()=>{state.user=$('#user').value;state.version=-1;if(state.channel==='home')post('/api/home',{user:state.user});refresh();});
state.user=$('#user').value;pickChannel(document.querySelector('nav [data-channel]').dataset.channel);
setInterval(refresh,700);
`;

/** The page, with the banner and side panel filled in (every value escaped). */
export function renderConsolePage(info: PageInfo): string {
  const users = info.users
    .map((u) => `<option value="${escapeHtml(u.id)}">${escapeHtml(u.name)} (${escapeHtml(u.role)})</option>`)
    .join('');
  const channels = info.channels
    .map((c) => `<button type="button" data-channel="${escapeHtml(c.id)}"># ${escapeHtml(c.name)}</button>`)
    .join('');
  const suggestions = info.suggestions
    .map(
      (s) =>
        `<button type="button" class="suggest" data-suggest="${escapeHtml(s)}">${escapeHtml(s)}</button>`,
    )
    .join('');
  const list = (lines: string[]) => `<ul>${lines.map((l) => `<li>${escapeHtml(l)}</li>`).join('')}</ul>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>quell console</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>${STYLE}</style></head>
<body>
<div id="banner" class="banner ${info.banner.kind}">${escapeHtml(info.banner.text)}<small>${escapeHtml(info.banner.detail)}</small></div>
<div class="layout">
<nav><h3>Acting as</h3><select id="user">${users}</select>
<h3>Channels</h3>${channels}<h3>App</h3><button type="button" data-channel="home">⌂ quell Home</button></nav>
<main><div id="feed"></div>
<form id="say"><input id="text" autocomplete="off" placeholder="${escapeHtml(info.command)} help"><button class="button primary" type="submit">Send</button></form></main>
<aside><h3>Try</h3>${suggestions}<h3>This world</h3><div id="scenario">${list(info.scenario)}</div>
<h3>Connect real Slack</h3><p>This console replaces only Slack. To run quell in your workspace, create the app from <code>manifest.yaml</code>, then set:</p>${list(info.connectSlack)}<p>and start it again with a <code>quell.yaml</code> (see <code>quell.example.yaml</code>).</p></aside>
</div>
<div id="modal" class="overlay" hidden></div>
<div id="confirm" class="overlay" hidden><div class="dialog"><div class="modal-title dialog-title"></div><p class="dialog-text"></p>
<div class="modal-buttons"><button type="button" class="button" data-confirm-no="1"></button><button type="button" class="button primary" data-confirm-yes="1"></button></div></div></div>
<script>${SCRIPT}</script>
</body></html>`;
}
