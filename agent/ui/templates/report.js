const cards=[...document.querySelectorAll('.step')],ov=document.getElementById('overlay'),box=ov.firstElementChild;
let cur=-1;
function go(n){if(!cards.length)return;cur=Math.max(0,Math.min(cards.length-1,n));const c=cards[cur];
c.focus({preventScroll:true});c.scrollIntoView({block:'center'});}
function openShot(s){if(!s||!s.querySelector('img'))return;const big=s.cloneNode(true);
const img=big.querySelector('img');img.loading='eager';img.src=s.querySelector('img').getAttribute('src');
box.replaceChildren(big);ov.hidden=false;}
function closeShot(){ov.hidden=true;box.replaceChildren();}
cards.forEach((c,i)=>c.addEventListener('focus',()=>{cur=i;}));
document.addEventListener('click',e=>{if(!ov.hidden){closeShot();return;}
const s=e.target.closest('.shot');if(s){const c=s.closest('.step');if(c)cur=cards.indexOf(c);openShot(s);}});
document.addEventListener('keydown',e=>{if(e.ctrlKey||e.metaKey||e.altKey)return;const k=e.key;
const step=k==='j'||k==='ArrowDown'||k==='ArrowRight'?1:k==='k'||k==='ArrowUp'||k==='ArrowLeft'?-1:0;
if(step){e.preventDefault();const open=!ov.hidden;go(cur<0&&step>0?0:cur+step);
if(open)openShot(cards[cur].querySelector('.shot'));}
else if(k==='Escape'&&!ov.hidden){e.preventDefault();closeShot();}
else if(k==='Enter'){e.preventDefault();if(!ov.hidden)closeShot();
else if(cur>=0)openShot(cards[cur].querySelector('.shot'));}
});
